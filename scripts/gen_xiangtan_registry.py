"""Generate the built-in EXAMPLE registry of the Xiangtan (湘潭) network.

The counts follow the city's 2021–2025 plan (80 sites, 296 instruments); the sites, names,
coordinates, people and phone numbers are invented, deterministically, for development and
drills; every site lies inside the county it names (the bundled county outlines,
daemon/http/static/geo/). Run:
    .venv/bin/python scripts/gen_xiangtan_registry.py > daemon/defaults/xiangtan_example.yaml
"""
from __future__ import annotations

import random
import sys

import yaml

from geowarn.daemon.boundaries import Boundaries

# county, admin code, site-id prefix, (lon, lat) centre, spread in degrees, sites, townships
COUNTIES = [
    ("湘潭县", "430321", "XTX", (112.80, 27.62), 0.17, 28,
     ["易俗河镇", "花石镇", "石鼓镇", "中路铺镇", "白石镇", "排头乡", "射埠镇", "青山桥镇", "茶恩寺镇", "锦石乡", "乌石镇"]),
    ("湘乡市", "430381", "XXS", (112.36, 27.78), 0.17, 26,
     ["壶天镇", "月山镇", "翻江镇", "棋梓镇", "毛田镇", "金石镇", "龙洞镇", "山枣镇", "梅桥镇", "东郊乡"]),
    ("韶山市", "430382", "SSS", (112.52, 27.92), 0.05, 10, ["清溪镇", "银田镇", "韶山乡", "杨林乡"]),
    ("雨湖区", "430302", "YHQ", (112.80, 27.94), 0.05, 9, ["鹤岭镇", "楠竹山镇", "姜畲镇", "长城乡"]),
    ("岳塘区", "430304", "YTQ", (113.00, 27.84), 0.04, 7, ["荷塘街道", "霞城街道", "宝塔街道", "昭山镇"]),
]
VILLAGES = ["石门", "金星", "长塘", "枫林", "龙塘", "白沙", "青山", "红旗", "双江", "杉树", "凤形", "桐梓",
            "大坪", "黄泥", "老屋", "竹山", "松柏", "马家", "石坝", "新塘", "上冲", "下湾", "茶园", "东山",
            "高岭", "柳树", "烟竹", "狮子", "楠木", "排山"]
HAZARD_WORD = {"landslide": "滑坡", "collapse": "崩塌", "debris_flow": "泥石流", "subsidence": "地面塌陷"}
SURNAMES = "王李张刘陈杨黄赵周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓彭"
GIVEN = ["建国", "志强", "秀英", "桂兰", "海燕", "国平", "红梅", "德华", "新民", "玉兰", "春生", "振华",
         "立新", "爱军", "凤英", "永红", "伟", "敏", "勇", "芳", "军", "静", "涛", "霞"]
KIND_CODE = {"gnss": "01", "crack": "02", "tilt": "03", "rain": "04", "pressure": "05", "alarm": "06", "video": "07"}
# normal and accelerated reporting intervals, seconds
INTERVALS = {"gnss": (7200, 60), "crack": (7200, 60), "tilt": (7200, 60), "pressure": (7200, 60),
             "rain": (3600, 600), "alarm": (86400, 3600), "video": (86400, 3600)}
MODELS = {"gnss": "GNSS-M1 北斗/GNSS 形变监测站", "crack": "LF-300 拉线式裂缝计", "tilt": "QJ-2 双轴倾角计",
          "rain": "YL-0.2 翻斗式雨量计", "pressure": "TY-10 振弦式土压力计", "alarm": "SG-50 声光报警器",
          "video": "SP-4G 太阳能视频监测仪"}


def inside(county: str, site_id: str, lon: float, lat: float, outlines: Boundaries) -> tuple[float, float]:
    """The drawn point if it lies in its county (and no other), else one drawn inside it from the
    site's own generator: the main generator's sequence, and so every other field, stays as it was."""
    if outlines.areas_at(lon, lat) == [county]:
        return lon, lat
    area = outlines.area(county)
    xs = [x for poly in area.polygons for x, _ in poly[0]]
    ys = [y for poly in area.polygons for _, y in poly[0]]
    own = random.Random(site_id)
    while True:
        lon, lat = round(own.uniform(min(xs), max(xs)), 5), round(own.uniform(min(ys), max(ys)), 5)
        if outlines.areas_at(lon, lat) == [county]:
            return lon, lat


def main() -> None:
    outlines = Boundaries.load()
    rnd = random.Random(20261129)
    names = iter(rnd.sample([s + g for s in SURNAMES for g in GIVEN], 700))
    phones = iter(rnd.sample(range(10_000), 700))

    def person(role_word: str) -> dict:
        return {"name": next(names), "role": role_word, "phone": f"1380731{next(phones):04d}"}

    sites = []
    hazards = ["landslide"] * 52 + ["collapse"] * 20 + ["debris_flow"] * 5 + ["subsidence"] * 3
    rnd.shuffle(hazards)
    h = iter(hazards)
    for county, code, prefix, (lon0, lat0), spread, n, towns in COUNTIES:
        for i in range(n):
            hazard = next(h)
            site_id = f"{prefix}{i + 1:03d}"
            town = towns[i % len(towns)]
            village = VILLAGES[(i * 7 + len(sites)) % len(VILLAGES)]
            households = rnd.randint(3, 45)  # the draws keep their original order
            lon, lat = inside(county, site_id, round(lon0 + rnd.uniform(-spread, spread), 5),
                              round(lat0 + rnd.uniform(-spread, spread) * 0.8, 5), outlines)
            sites.append({
                "id": site_id,
                "name": f"{town}{village}村{HAZARD_WORD[hazard]}",
                "county": county,
                "township": town,
                "division_code": code,
                "hazard": hazard,
                "lon": lon,
                "lat": lat,
                "households": households,
                "people": households * rnd.randint(2, 5),
                "_code": code,
            })

    # Instruments: landslides carry GNSS; every site has at least two deformation instruments.
    landslides = [s for s in sites if s["hazard"] == "landslide"]
    gnss = landslides[:51]
    no_tilt = {s["id"] for s in gnss[:19]}
    no_crack = {s["id"] for s in gnss[19:31]}
    by_people = sorted(sites, key=lambda s: -s["people"])
    alarms = {s["id"] for s in by_people[:52]}
    video = {s["id"] for s in by_people[:3]}
    pressure = {s["id"] for s in sorted(landslides, key=lambda s: -s["households"])[:10]}
    rain = {s["id"] for s in sorted(sites, key=lambda s: (s["id"][-3:], s["id"]))[:51]}
    gnss_ids = {s["id"] for s in gnss}

    serial = {}
    for s in sites:
        kinds = []
        if s["id"] in gnss_ids:
            kinds.append("gnss")
        if s["id"] not in no_crack:
            kinds.append("crack")
        if s["id"] not in no_tilt:
            kinds.append("tilt")
        for kind, chosen in (("pressure", pressure), ("rain", rain), ("alarm", alarms), ("video", video)):
            if s["id"] in chosen:
                kinds.append(kind)
        code = s.pop("_code")
        devices = []
        for kind in kinds:
            serial[code, kind] = serial.get((code, kind), 0) + 1
            normal, fast = INTERVALS[kind]
            devices.append({"id": f"{code}{KIND_CODE[kind]}{serial[code, kind]:04d}", "kind": kind,
                            "model": MODELS[kind], "interval_s": normal, "accelerated_interval_s": fast})
        s["contacts"] = {
            "monitor": [person("群测群防员") for _ in range(2)],
            "official": [person(f"{s['township']}分管领导")],
            "household": [person("受威胁户户主") for _ in range(min(3, s["households"]))],
            "technician": [person(f"{s['county']}监测设备运维")],
            "duty_officer": [person(f"{s['county']}地质灾害防治值班室")],
        }
        s["devices"] = devices
    doc = {
        "name": "湘潭市地质灾害专业监测网（示例）",
        "example": True,
        "note": ("EXAMPLE registry: counts follow the Xiangtan 2021-2025 plan (80 sites, 296 instruments); "
                 "sites, people, coordinates and phone numbers are invented. Replace with the real registry."),
        "sites": sites,
    }
    sys.stdout.write("# EXAMPLE registry of the Xiangtan (湘潭) geohazard monitoring network — not real sites.\n"
                     "# Generated by scripts/gen_xiangtan_registry.py; counts follow the city's 2021-2025 plan.\n")
    yaml.safe_dump(doc, sys.stdout, allow_unicode=True, sort_keys=False, width=120)


if __name__ == "__main__":
    main()
